"""MP4 encoding and decoding of camera streams with PyAV (the ``data`` extra)."""

from __future__ import annotations

import numpy as np


def _av():
    try:
        import av
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("video encoding/decoding needs PyAV: pip install 'embodied-vla[data]'") from error
    return av


# Datasets store camera streams as H.264 4:4:4 at crf 0: the quantiser is lossless, so decoded frames differ
# from the live renders only by the RGB -> YCbCr rounding (0.24/255 on average, at most 2/255, on PickCube).
# The viewing default yuv420p at crf 18 halves colour resolution: a 12-pixel goal marker decoded as
# (119, 193, 100) where the render was (50, 233, 70), so policies trained on it saw other pixels than in sim.
DATASET_PIX_FMT, DATASET_CRF = "yuv444p", 0


def encode_video(frames: np.ndarray, path: str, fps: float, codec: str = "libx264", crf: int = 18,
                 pix_fmt: str = "yuv420p") -> None:
    """Write uint8 frames [T, H, W, 3] to ``path`` (yuv420p needs even H and W; datasets use ``DATASET_PIX_FMT``)."""
    av = _av()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise ValueError(f"yuv420p video needs even height and width, got {frames.shape[1]}x{frames.shape[2]}")
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = {"crf": str(crf)} if codec in ("libx264", "h264", "libsvtav1") else {}
        if codec in ("libx264", "h264"):
            stream.options["tune"] = "zerolatency"  # no B-frame look-ahead: frames come out in order, fast
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def decode_video(path: str, start_s: float = 0.0, count: int | None = None, fps: float | None = None) -> np.ndarray:
    """Frames [T, H, W, 3] uint8 of ``path`` from timestamp ``start_s`` (``count`` of them, or to the end)."""
    av = _av()
    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = float(fps or stream.average_rate)
        first = int(round(start_s * rate))
        for index, frame in enumerate(container.decode(stream)):
            if index < first:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if count is not None and len(frames) == count:
                break
    if count is not None and len(frames) != count:
        raise ValueError(f"{path}: expected {count} frames from {start_s:.3f}s, decoded {len(frames)}")
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)

"""VLA policy family: head shapes and log-probs, persistence, statistics, pretrained encoders, SFT overfit."""

import os

import numpy as np
import pytest
import torch

from policies import from_pretrained, make_policy
from policies.vla.encoders import LANGUAGE_ENCODERS, build_encoder
from policies.vla.stats import MissingStatsError

HEADS = ["token", "gaussian", "flow"]


def tiny_vla(head: str, chunk: int = 3, **extra):
    torch.manual_seed(0)
    policy = make_policy("vla", state_dim=5, action_dim=4, chunk_size=chunk, cameras=["front", "wrist"],
                         head={"name": head}, fusion={"hidden_size": 32, "layers": 1, "heads": 2,
                                                      "intermediate_size": 64}, **extra)
    policy.set_stats(torch.zeros(5), torch.ones(5), -torch.ones(4) * 2, torch.ones(4) * 2)
    return policy


def observation(n: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    rgb = {cam: torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g) for cam in ("front", "wrist")}
    return {"rgb": rgb, "state": torch.randn(n, 5, generator=g),
            "instruction": ["pick up the red cube", "push the cube", "stack the cubes"][:n]}


@pytest.mark.parametrize("head", HEADS)
def test_every_head_has_interface_shapes_and_consistent_logprob(head):
    policy, obs = tiny_vla(head), observation()
    action, logprob, value = policy.act(obs)
    assert action.shape == logprob.shape == (3, 3, 4) and value.shape == (3,)
    if head == "token":  # token actions are bin centres, always inside the action bounds (+-2 here)
        assert (action.abs() <= 2 + 1e-6).all()
    again, entropy, value_again = policy.evaluate(obs, action)
    assert entropy.shape == (3, 3, 4)
    torch.testing.assert_close(again, logprob, atol=1e-4, rtol=0)
    torch.testing.assert_close(value_again, value)
    assert policy.deterministic_action(obs).shape == (3, 3, 4)
    assert policy.select_action(obs).shape == (3, 4)


def test_token_head_logprob_is_the_sum_over_its_tokens():
    policy, obs = tiny_vla("token"), observation()
    action, logprob, _ = policy.act(obs)
    h = policy.fused(obs)
    logits = policy.head.logits(h).view(3, 3, 4, 256)  # one query per (step, dimension) token
    tokens = policy.head.tokens(policy.stats.normalize_action(action))
    by_hand = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    torch.testing.assert_close(logprob, by_hand)
    torch.testing.assert_close(logprob.sum(dim=(1, 2)), by_hand.flatten(1).sum(1))
    assert torch.allclose(policy.head.centers[tokens], policy.stats.normalize_action(action), atol=1e-6)


@pytest.mark.parametrize("n_action_steps, predictions_in_six_steps", [(0, 2), (1, 6), (2, 3)])
def test_select_action_executes_n_action_steps_of_each_chunk_then_predicts_again(
        n_action_steps, predictions_in_six_steps, monkeypatch):
    policy, obs = tiny_vla("gaussian", n_action_steps=n_action_steps), observation()  # chunk_size 3
    chunks = iter(torch.arange(6 * 3 * 3 * 4, dtype=torch.float32).view(6, 3, 3, 4))  # distinct chunks [N, T, A]
    calls = []
    monkeypatch.setattr(policy, "deterministic_action", lambda o: calls.append(1) or next(chunks))
    executed = torch.stack([policy.select_action(obs) for _ in range(6)], 1)  # [N, 6, A]
    assert len(calls) == predictions_in_six_steps
    every = n_action_steps or 3
    expected = torch.arange(6 * 3 * 3 * 4, dtype=torch.float32).view(6, 3, 3, 4)[:, :, :every]  # first `every` steps
    expected = expected.permute(1, 0, 2, 3).reshape(3, -1, 4)[:, :6]  # [N, 6, A] in execution order
    torch.testing.assert_close(executed, expected)


def test_negative_n_action_steps_is_rejected_by_name():
    with pytest.raises(ValueError, match="n_action_steps"):
        tiny_vla("gaussian", n_action_steps=-1)


@pytest.mark.parametrize("head", HEADS)
def test_save_and_load_round_trip_is_bit_exact(head, tmp_path):
    policy, obs = tiny_vla(head), observation()
    policy.save_pretrained(str(tmp_path))
    loaded = from_pretrained(str(tmp_path))
    for key, tensor in policy.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    assert torch.equal(policy.deterministic_action(obs), loaded.deterministic_action(obs))


def test_missing_statistics_raise_on_use_and_on_load(tmp_path):
    policy = make_policy("vla", state_dim=5, action_dim=4, cameras=["front", "wrist"],
                         fusion={"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64})
    with pytest.raises(MissingStatsError, match="set_stats"):
        policy.act(observation())
    policy.save_pretrained(str(tmp_path))
    with pytest.raises(MissingStatsError):
        from_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="state_std"):
        policy.set_stats(torch.zeros(5), torch.zeros(5), -torch.ones(4), torch.ones(4))


def test_frozen_towers_cache_features_and_give_the_same_outputs():
    policy, obs = tiny_vla("gaussian", vision={"name": "tiny", "freeze": True},
                           language={"name": "tiny", "freeze": True}), observation()
    cached = policy.cache_features(obs)
    assert "rgb" not in cached and cached["vision_tokens"].shape[0] == 3
    torch.testing.assert_close(policy.deterministic_action(cached), policy.deterministic_action(obs))
    loss = policy.evaluate(cached, policy.act(cached)[0])[0].sum()
    loss.backward()
    assert all(p.grad is None for p in policy.vision.parameters())
    assert policy.vision_proj.weight.grad is not None


def test_minilm_is_really_pretrained():
    encoder = build_encoder(LANGUAGE_ENCODERS, {"name": "minilm"}).eval()
    texts = ["pick up the red cube", "grasp the red block and lift it", "the stock market fell sharply today"]
    with torch.no_grad():
        tokens, mask = encoder(texts)
    pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    paraphrase, unrelated = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert paraphrase > 0.35 and paraphrase > unrelated + 0.25, (paraphrase, unrelated)


def test_mobilenet_v2_is_really_pretrained():
    import matplotlib
    from PIL import Image

    from policies.vla.mobilenet_v2 import load_imagenet_mobilenet_v2

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    image = np.array(Image.open(path).convert("RGB").resize((224, 224)))
    with torch.no_grad():
        logits = load_imagenet_mobilenet_v2()(torch.from_numpy(image)[None])
    assert int(logits.argmax()) == 652  # ImageNet class 652: "military uniform"


def test_tiny_vla_overfits_a_handful_of_demonstrations():
    from sims import make_env
    from sims.experts import WaypointExpert

    env = make_env(task="PickCube", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    obs, _ = env.reset(seed=0)
    expert = WaypointExpert(env)
    steps = []
    for _ in range(4):
        action = expert.act()
        steps.append((obs, action))
        obs, *_ = env.step(action)
    batch_obs = {"rgb": {"front": torch.cat([o["rgb"]["front"] for o, _ in steps])},
                 "state": torch.cat([o["state"] for o, _ in steps]),
                 "instruction": sum([list(o["instruction"]) for o, _ in steps], [])}
    batch = {"obs": batch_obs, "action": torch.cat([a for _, a in steps])[:, None]}  # 16 demos, chunk 1
    torch.manual_seed(0)
    policy = make_policy("vla", state_dim=env.observation_spec.state_dim, action_dim=env.action_spec.dim,
                         cameras=["front"], head={"name": "token"},
                         fusion={"hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128})
    states = batch_obs["state"]
    policy.set_stats(states.mean(0), states.std(0) + 1e-3, -torch.ones(env.action_spec.dim),
                     torch.ones(env.action_spec.dim))
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    first = policy.sft_loss(batch).item()
    for _ in range(150):
        loss = policy.sft_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 10, (first, loss.item())


def test_hf_towers_load_from_a_local_path(tmp_path):
    import shutil

    import transformers

    from policies.vla.encoders import VISION_ENCODERS, minilm_path

    vit = transformers.ViTModel(transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, image_size=32, patch_size=8))
    vit.save_pretrained(tmp_path / "vit")
    vision = build_encoder(VISION_ENCODERS, {"name": "hf", "path": str(tmp_path / "vit"), "image_size": 32})
    tokens = vision(torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8))
    assert tokens.shape == (2, 1 + 16, 32) and vision.dim == 32
    text_dir = tmp_path / "bert"
    transformers.BertModel(transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=64)).save_pretrained(text_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(os.path.join(minilm_path(), name), text_dir / name)
    language = build_encoder(LANGUAGE_ENCODERS, {"name": "hf", "path": str(text_dir), "max_tokens": 8})
    words, mask = language(["pick up the cube", "push"])
    assert words.shape == (2, 8, 32) and mask.sum(1).tolist() == [6, 3]  # [CLS] ... [SEP]
    with pytest.raises(ValueError, match="policy.vision.path"):
        build_encoder(VISION_ENCODERS, {"name": "hf"})

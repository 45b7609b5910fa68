# Puts the weights on FSx once. The marker is written last, so its presence means complete.
set -euo pipefail
if [[ -f "$MARKER" ]]; then
  echo "Model already staged at $MODEL_DIR ($(cat "$MARKER")); nothing to do."
  exit 0
fi
pip install --no-cache-dir --quiet --disable-pip-version-check $PIP_PACKAGES
mkdir -p "$MODEL_DIR" "$(dirname "$MARKER")"
if [[ "$PRELOAD_ONLY" == "true" ]]; then
  # A data repository association shows the S3 objects already; reading them once pulls
  # their contents onto the file system so vLLM never waits on S3.
  echo "Loading $MODEL_DIR from its S3 data repository"
  find "$MODEL_DIR" -type f -print0 | xargs -0 -r -n 4 -P 8 cat > /dev/null
elif [[ -n "$MODEL_S3_URI" ]]; then
  echo "Copying $MODEL_S3_URI to $MODEL_DIR"
  aws s3 sync --only-show-errors "$MODEL_S3_URI" "$MODEL_DIR"
else
  if [[ -n "$HF_TOKEN_FILE" ]]; then
    HF_TOKEN="$(cat "$HF_TOKEN_FILE")"
    export HF_TOKEN
  fi
  echo "Downloading $MODEL_ID from Hugging Face to $MODEL_DIR"
  hf download "$MODEL_ID" --local-dir "$MODEL_DIR" --quiet
fi
date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER.partial"
mv "$MARKER.partial" "$MARKER"
echo "Model staged at $MODEL_DIR"

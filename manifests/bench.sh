# One `vllm bench serve` run per concurrency; flags as in vllm/benchmarks/serve.py and the
# random dataset's own (--random-input-len, --random-output-len). Each result JSON is kept on
# FSx and echoed on one marked line, which `make bench` copies to the user's disk.
set -euo pipefail
mkdir -p "$RESULT_DIR"
for concurrency in $CONCURRENCIES; do
  file="concurrency-${concurrency}.json"
  vllm bench serve \
    --backend openai \
    --base-url "$BASE_URL" \
    --endpoint /v1/completions \
    --model "$MODEL" \
    --tokenizer "$TOKENIZER" \
    --dataset-name random \
    --random-input-len "$INPUT_LEN" \
    --random-output-len "$OUTPUT_LEN" \
    --num-prompts "$((concurrency * PROMPTS_PER_CONCURRENCY))" \
    --max-concurrency "$concurrency" \
    --percentile-metrics ttft,tpot,itl \
    --metric-percentiles 50,99 \
    --save-result \
    --result-dir "$RESULT_DIR" \
    --result-filename "$file"
  echo "BENCH-RESULT $file $(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$RESULT_DIR/$file")"
done

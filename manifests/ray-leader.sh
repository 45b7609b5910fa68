# Ray executor, leader pod: start the head, wait for every worker node, then serve.
set -euo pipefail
ray start --head --port=6379 --num-gpus="$GPUS_PER_NODE" --disable-usage-stats
until [[ "$(python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(1 for n in ray.nodes() if n["Alive"]))')" -ge "$LWS_GROUP_SIZE" ]]; do
  echo "Waiting for $LWS_GROUP_SIZE Ray nodes to join"
  sleep 10
done
exec vllm serve "$@"

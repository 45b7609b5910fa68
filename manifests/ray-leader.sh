# Ray executor, leader pod: start the head, wait until every node of the group has joined,
# then serve. No deadline here: the startup probe bounds the whole start.
set -euo pipefail
ray start --head --port=6379 --num-gpus="$GPUS_PER_NODE" --disable-usage-stats
alive_nodes() {
  python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(1 for n in ray.nodes() if n["Alive"]))'
}
until nodes="$(alive_nodes)" && [[ "$nodes" -ge "$LWS_GROUP_SIZE" ]]; do
  echo "Waiting for Ray nodes: ${nodes:-0} of $LWS_GROUP_SIZE joined"
  sleep 10
done
echo "All $LWS_GROUP_SIZE Ray nodes joined; starting vllm serve"
exec vllm serve "$@"

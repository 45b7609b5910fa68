# Ray executor, worker pod: join the leader's head, retrying until it answers (the leader pod
# may still be pulling its image or waiting for the weights), then hold the pod while it runs.
set -uo pipefail
until ray start --address="$LWS_LEADER_ADDRESS:6379" --num-gpus="$GPUS_PER_NODE" --block; do
  echo "Ray head $LWS_LEADER_ADDRESS:6379 not answering yet; retrying in 5 s"
  sleep 5
done

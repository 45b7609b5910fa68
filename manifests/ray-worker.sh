# Ray executor, worker pod: join the leader's head and hold the pod open while it runs.
set -euo pipefail
exec ray start --address="$LWS_LEADER_ADDRESS:6379" --num-gpus="$GPUS_PER_NODE" --block

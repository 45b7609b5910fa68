"""All-reduce bus bandwidth by message size, one process per GPU, launched by torchrun.

Bus bandwidth follows nccl-tests (NVIDIA/nccl-tests doc/PERFORMANCE.md): for all-reduce,
busbw = algbw x 2 (n - 1) / n, which makes the figure comparable with the link's line rate.
Rank 0 prints one `NCCL-TEST` line per size; the slowest rank's time counts.
"""

import os
import time

import torch
import torch.distributed as dist


def main() -> None:
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    warmup, iterations = int(os.environ["WARMUP"]), int(os.environ["ITERATIONS"])
    for size in (int(text) for text in os.environ["SIZES"].split()):
        tensor = torch.ones(size // 4, dtype=torch.float32, device="cuda")
        for _ in range(warmup):
            dist.all_reduce(tensor)
        torch.cuda.synchronize()
        dist.barrier()
        start = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(tensor)
        torch.cuda.synchronize()
        slowest = torch.tensor([(time.perf_counter() - start) / iterations], device="cuda")
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        seconds = slowest.item()
        algbw = size / seconds / 1e9
        busbw = algbw * 2 * (world - 1) / world
        if rank == 0:
            print(
                f"NCCL-TEST size={size} ranks={world} time_us={seconds * 1e6:.1f} "
                f"algbw_GBps={algbw:.2f} busbw_GBps={busbw:.2f}",
                flush=True,
            )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""vLLM's compile cache lives on FSx, one directory per model, image and TP/PP layout.

Contract (vllm-project/vllm, vllm/envs.py): `VLLM_CACHE_ROOT` is the root of vLLM's cache files
(default ~/.cache/vllm, i.e. the container's throwaway disk). vllm/compilation/backends.py
writes torch.compile artifacts to VLLM_CACHE_ROOT/torch_compile_cache/<hash of env, config,
code and compiler>/rank_<r>_<dp>/; the vLLM docs' torch.compile design page says copying that
directory saves the compilation on the next start. Read in the indexed vLLM source and the
docs of v0.11-v0.32; not confirmed at the pinned DLC's v0.27.1 tag itself.
"""

from __future__ import annotations

from constructs.model_staging import FSX_MOUNT_PATH, model_slug
from constructs.vllm_service import COMPILE_CACHE_ROOT
from test_workload_stack import (
    CUSTOM_IMAGE,
    LOCKED,
    SMALL_MODEL_ON_G5,
    env_by_name,
    pod_specs,
    vllm_container,
)

from config.versions import VLLM_DLC_REPOSITORY, VLLM_DLC_TAG

DEFAULT_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"


def cache_roots(app) -> dict[str, str]:
    return {
        role: env_by_name(vllm_container(spec))["VLLM_CACHE_ROOT"]["value"]
        for role, spec in pod_specs(app).items()
    }


def test_given_default_config_then_leader_and_workers_share_one_keyed_cache_on_fsx(default_app):
    dlc = model_slug(f"{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}")
    expected = f"{FSX_MOUNT_PATH}/vllm-cache/{model_slug(DEFAULT_MODEL)}/{dlc}/tp8-pp2"
    assert cache_roots(default_app) == {"leader": expected, "worker": expected}
    assert f"{FSX_MOUNT_PATH}/vllm-cache" == COMPILE_CACHE_ROOT


def test_given_default_config_then_the_cache_is_on_the_writable_fsx_mount(default_app):
    for role, spec in pod_specs(default_app).items():
        mounts = {m["mountPath"]: m for m in vllm_container(spec)["volumeMounts"]}
        mount = mounts[FSX_MOUNT_PATH]
        assert not mount.get("readOnly"), role
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "persistentVolumeClaim" in volumes[mount["name"]], role
        assert cache_roots(default_app)[role].startswith(FSX_MOUNT_PATH + "/")


def test_given_another_image_then_only_the_image_part_of_the_cache_key_changes(
    default_app, synth_variant
):
    default = cache_roots(default_app)["leader"].split("/")
    custom = cache_roots(synth_variant(**LOCKED))["leader"].split("/")
    assert custom[-2] == model_slug(CUSTOM_IMAGE) != default[-2]
    assert custom[:-2] == default[:-2] and custom[-1] == default[-1]


def test_given_another_model_and_layout_then_model_and_tp_pp_parts_change(
    default_app, synth_variant
):
    default = cache_roots(default_app)["worker"].split("/")
    small = cache_roots(synth_variant(**SMALL_MODEL_ON_G5))["worker"].split("/")
    assert small[-3] == model_slug(SMALL_MODEL_ON_G5["modelId"]) != default[-3]
    assert small[-1] == "tp1-pp1" and default[-1] == "tp8-pp2"
    assert small[-2] == default[-2]

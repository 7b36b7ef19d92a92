"""The [exllamav2] configuration section (GPU backend)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExLlamaV2Settings(BaseModel):
    """How the exllamav2 backend loads the model on the GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_type: str = Field("fp16", description="KV cache type: fp16, q4, q6 or q8.")

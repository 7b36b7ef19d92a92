"""The [openai] configuration section: where the OpenAI-compatible server is and how to reach it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OpenAISettings(BaseModel):
    """How the ``openai`` backend talks to a remote OpenAI-compatible server (vLLM, TabbyAPI, llama.cpp)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field("http://127.0.0.1:8000/v1", description="The server's OpenAI API root, ending in /v1.")
    model: str = Field("", description="Model name the server serves; empty = the first one it lists at /v1/models.")
    api_key_env: str = Field("EPISTEMIC_OPENAI_API_KEY", description="Name of the environment variable that holds the API key (the key itself never goes in a file); unset variable = no key.")
    connect_timeout_s: float = Field(5.0, gt=0.0, description="Seconds to wait for the server to accept a connection.")
    read_timeout_s: float = Field(120.0, gt=0.0, description="Seconds to wait for the next piece of a reply (first token included) before giving up.")
    max_retries: int = Field(0, ge=0, le=10, description="Retries of a refused request (connection error, 429, 5xx) before the reply fails.")
    logprobs: bool = Field(True, description="Ask for per-token logprobs and top alternatives (entropy shown is then a top-k lower bound).")
    adapter_models: dict[str, str] = Field(default_factory=dict, description="Persona LoRA adapter (folder name or path) -> the model name the server serves it as; unlisted adapters use their folder name.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. http://127.0.0.1:8000/v1")
        return value

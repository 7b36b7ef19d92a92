"""Training your own LoRA adapters: base weights, the SFT/DPO trainers, PEFT -> GGUF conversion, eval.

Everything heavy (torch, transformers, peft, trl, gguf) is imported inside functions, so importing
this package costs nothing; a missing optional extra raises :class:`agent.errors.MissingExtra`.
Training runs as its own process (``epistemic train sft``) and reports progress as it goes.
"""

"""l1lite: teach a small reasoning model to obey a thinking budget written in its prompt (LCPO with LoRA)."""

__version__ = "0.1.0"

"""Training: LCPO GRPO with LoRA after an optional hindsight start (``l1lite train``). Imports only the core.

- ``run``: the training run: the whole config checked first, then the hindsight start, GRPO, checkpoints, resume.
- ``hindsight``: the supervised start (the model's own answers relabelled with their length as the budget).
- ``rewards``: LCPO-Exact and LCPO-Max as TRL reward functions, and the ``lcpo/*`` metrics.
- ``curriculum``: the target (and Exact/Max mode) of each training prompt; ``schedule`` hands it to TRL.
- ``loaders``, ``unsloth_adapter``: the model being trained (Unsloth, bitsandbytes nf4 or plain) with LoRA.
- ``rollouts``: what generates GRPO's completions (``rollouts.engine``): vLLM through TRL's ``rollout_func``.
- ``plan``: peak memory by component and time per card of a run (``l1lite plan``; ``l1lite train`` checks it).
- ``cli``, ``preview``, ``presets``: ``l1lite train``, ``l1lite curriculum preview``, ``l1lite presets``.
"""

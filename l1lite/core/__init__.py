"""The shared core every stage may import; it imports no other l1lite package.

- ``config``: typed configs, ``--config`` / ``--set`` and the preset lookup.
- ``prompts``: the budget sentence (``Think for N tokens.``), shared by training, inference and evaluation.
- ``r1``: the R1 chat format: special tokens, ``<think>`` markers, chat template, token counting.
- ``grading``: answer extraction and bounded grading (math-verify in a worker process).
- ``data``: problems from the hub, a local file or ``l1lite:math-small`` in one shape (``id``, ``question``,
  ``answer``).
- ``models``, ``tiny``: where a base model comes from (``l1lite:tiny``, ``l1lite:smollm2-135m``, ``.gguf``,
  folder or hub id) and the offline tiny model (``l1lite tiny-model``).
- ``hf``: batched transformers generation, shared by the hindsight start and the transformers backend.
- ``vllm``: an in-process vLLM engine with adapters as LoRA requests, shared by the rollouts and the vLLM backend.
- ``files``: atomic, no-clobber outputs.
"""

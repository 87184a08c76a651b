"""Generation with a thinking budget: the budget prompt, optional enforcement, three backends.

What each module owns:

- ``types``: the values: ``Budget`` (budget, mode, enforcement, ``max_tokens``; checked on construction),
  ``Sampling``, ``Completion`` and ``GenerationResult``.
- ``base``: the ``Backend`` interface (a backend declares ``chat_only``), the stop-string text sink and the
  vocabularies (an HF tokenizer or a GGUF's) that render the chat template and count tokens.
- ``llama_cpp``, ``hf``, ``vllm``, ``openai``: one backend each: llama.cpp through llama-cpp-python (``.gguf``),
  transformers (HF folder, optional PEFT adapter), vLLM in process (HF folder, the adapter as a LoRA; calls from
  several threads share its continuous batch), an OpenAI-compatible server (llama.cpp's server, Ollama's ``/v1``,
  vLLM) fed a prompt rendered locally, or chat-only without a tokenizer.
- ``load``: ``load_backend``, which picks the backend a path or endpoint means.
- ``budget``: ``generate`` and the enforcement algorithm (none / cap / forcing); ``generate_batch``;
  ``check_room`` (a budget that cannot fit: refused when exact, warned about when max).
- ``cli``: ``l1lite generate`` and the options it shares with ``chat`` (``l1lite chat``).

Dependencies point one way: types <- base <- backends <- load <- cli <- chat, and base <- budget <- cli;
budget never imports a concrete backend, and nothing but ``chat`` and ``l1lite.serve`` import ``cli``.
"""

from l1lite.inference.base import Backend
from l1lite.inference.budget import check_room, cut, generate, generate_batch
from l1lite.inference.hf import TransformersBackend
from l1lite.inference.llama_cpp import LlamaCppBackend
from l1lite.inference.load import load_backend
from l1lite.inference.openai import OpenAIBackend, OpenAIChatBackend
from l1lite.inference.types import CAP_MESSAGE_EXAMPLE, ENFORCE, Budget, Completion, GenerationResult, Sampling

__all__ = [
    "CAP_MESSAGE_EXAMPLE",
    "ENFORCE",
    "Backend",
    "Budget",
    "Completion",
    "GenerationResult",
    "LlamaCppBackend",
    "OpenAIBackend",
    "OpenAIChatBackend",
    "Sampling",
    "TransformersBackend",
    "check_room",
    "cut",
    "generate",
    "generate_batch",
    "load_backend",
]

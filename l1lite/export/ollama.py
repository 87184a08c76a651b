"""The Ollama Modelfile: R1 chat template in Go-template syntax, stop tokens and sampling defaults.

The R1 tokens come from ``l1lite.core.r1``. Must not import the rest of ``l1lite.export``.
"""

from __future__ import annotations

from pathlib import Path

from l1lite.core.files import atomic_path
from l1lite.core.r1 import ASSISTANT, EOS, THINK_CLOSE, THINK_OPEN, USER

# R1 chat template in Ollama's Go-template syntax, one template line per item. Thinking on (default): the turn
# opens "<think>\n" exactly as in training; `think: false` closes an empty thought. Earlier assistant turns keep
# only their answer.
_OLLAMA_TEMPLATE = "\n".join(
    [
        "{{- if .System }}{{ .System }}{{ end }}",
        "{{- range $i, $m := .Messages }}",
        "{{- $last := eq (len (slice $.Messages $i)) 1 }}",
        '{{- if eq $m.Role "user" }}' + USER + "{{ $m.Content }}",
        '{{- else if eq $m.Role "assistant" }}' + ASSISTANT + "{{ $m.Content }}{{ if not $last }}" + EOS + "{{ end }}",
        "{{- end }}",
        '{{- if and $last (ne $m.Role "assistant") }}' + ASSISTANT,
        "{{- if and $.IsThinkSet (not $.Think) }}" + THINK_OPEN,
        "",
        THINK_CLOSE,
        "",
        "{{ else }}" + THINK_OPEN,
        "{{ end }}",
        "{{- end }}",
        "{{- end }}",
    ]
)


def write_modelfile(gguf_path: str | Path, out_dir: str | Path, num_ctx: int = 8192, force: bool = False) -> Path:
    """Write ``out_dir/Modelfile`` for ``ollama create NAME -f Modelfile`` (R1 template, stops, sampling).

    Args:
        gguf_path (`str` or `Path`):
            The GGUF the model is created from; named as ``./FILE`` when it lies in ``out_dir``.
        out_dir (`str` or `Path`):
            Folder the ``Modelfile`` is written to (atomically).
        num_ctx (`int`, *optional*, defaults to `8192`):
            Ollama's context length (``PARAMETER num_ctx``).
        force (`bool`, *optional*, defaults to `False`):
            Overwrite an existing ``Modelfile``.

    Returns:
        `Path`: the ``Modelfile``.
    """
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    source = f"./{gguf_path.name}" if gguf_path.parent.resolve() == out_dir.resolve() else str(gguf_path.resolve())
    text = f"""# Ollama Modelfile written by `l1lite export`.  Create the model with:
#   ollama create NAME -f Modelfile
# Ask for a thinking budget by appending "Think for N tokens." to the question, e.g.
#   ollama run NAME "What is 7 * 8? Think for 512 tokens."
# ("Think for maximum N tokens." asks for at most N tokens with an L1-Max model.)
FROM {source}
TEMPLATE \"\"\"{_OLLAMA_TEMPLATE}\"\"\"
PARAMETER stop "{EOS}"
PARAMETER stop "{USER}"
PARAMETER temperature 0.6
PARAMETER top_p 0.95
PARAMETER num_ctx {num_ctx}
"""
    path = out_dir / "Modelfile"
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path

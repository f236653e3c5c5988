"""Child-process entry: re-quantise a GGUF file with llama.cpp's own quantiser."""

from __future__ import annotations

import ctypes
import sys

FTYPES = {
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
}


def main(argv: list[str]) -> int:
    """``python -m gateway._quantize SRC DST TYPE``; returns llama.cpp's status code."""
    import llama_cpp

    source, target, kind = argv
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[kind])
    params.allow_requantize = True
    return int(
        llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params))
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

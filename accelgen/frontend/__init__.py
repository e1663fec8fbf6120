"""Front end: read an ONNX file in any of the three quantization dialects into the IR."""

from accelgen.frontend.importer import import_model
from accelgen.frontend.load import detect_dialect, load_model

__all__ = ["detect_dialect", "import_model", "load_model"]

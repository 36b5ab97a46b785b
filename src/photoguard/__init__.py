"""photoguard: privacy guard for the photos a primary school shares."""

import os as _os

# onnxruntime (text finding) writes a device id under ~/.cache/Microsoft/ and sends usage events
# unless this is set before it is first imported. Forced, not defaulted: photoguard never phones home.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"

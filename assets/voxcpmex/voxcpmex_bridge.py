"""Drop-in replacement for VoxCPMEx's priv/python/voxcpmex_bridge.py.

VoxCPMEx starts `python3 -u <priv>/python/voxcpmex_bridge.py`; this file hands that process's
stdin and stdout over to the native bridge, `voxcpm bridge`, which speaks the same v2.1
protocol. Copy it over the original (see the README, "VoxCPMEx").

Environment:
  VOXCPM_BIN         the voxcpm executable (default: `voxcpm` on PATH)
  VOXCPM_BRIDGE_LOG  a log file for the bridge (it writes nothing to stderr)
  VOXCPM_MODEL       not used here: VoxCPMEx sends the model in its init message
"""

import os
import struct
import sys

binary = os.environ.get("VOXCPM_BIN", "voxcpm")
args = [binary, "bridge"]
if os.environ.get("VOXCPM_BRIDGE_LOG"):
    args += ["--log", os.environ["VOXCPM_BRIDGE_LOG"]]

try:
    os.execvp(binary, args)
except OSError as error:
    # Report through the protocol, never on stderr (VoxCPMEx 0.3.0 reads stderr as frames):
    # a msgpack map {"status": "error", "error": text}, framed with the self-counting length.
    def mp_str(text):
        raw = text.encode("utf-8")[:65535]
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        if len(raw) < 256:
            return bytes([0xD9, len(raw)]) + raw
        return bytes([0xDA]) + struct.pack(">H", len(raw)) + raw

    text = "cannot start the native bridge %r: %s" % (binary, error)
    payload = bytes([0x82]) + mp_str("status") + mp_str("error") + mp_str("error") + mp_str(text)
    sys.stdout.buffer.write(struct.pack(">I", len(payload) + 4) + payload)
    sys.stdout.buffer.flush()
    sys.exit(1)

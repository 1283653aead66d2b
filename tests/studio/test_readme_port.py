"""The README's Studio example names its port once: server and client read the same ``PORT``.

Before, both hard-coded 2024, and when 2024 was busy the server moved silently while the client
kept calling 2024.
"""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
STUDIO = README.split("### LangGraph Studio", 1)[1].split("\n### ", 1)[0]


def test_server_and_client_use_one_port_variable():
    shell = re.search(r"```bash\n(.*?)```", STUDIO, re.S).group(1)
    client = re.search(r"```python\n(.*?)```", STUDIO, re.S).group(1)
    assert re.search(r"^export PORT=\d+", shell, re.M)
    assert '--port "$PORT"' in shell
    assert "os.environ['PORT']" in client and "2024" not in client
    assert "--port" in STUDIO and "API:" in STUDIO  # says how to find the port it really took

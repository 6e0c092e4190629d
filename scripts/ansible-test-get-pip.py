"""Offline stand-in for the get-pip.py that ansible-test downloads from its CI file server.

That server is out of reach here; this script bootstraps the pip bundled with Python (ensurepip)
and lets it install the requested pip from the package index, which is reachable.
scripts/test copies it to ~/.ansible/test/cache/get_pip_<version>.py.
"""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# get-pip.py flags that plain `pip install` does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
# ansible-test runs pip with a trimmed environment: name the system's CA bundle explicitly.
cert = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(cert):
    args = ["--cert", cert, *args]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))

# nova's WSGI entry point parses sys.argv with oslo.config, which under
# gunicorn holds gunicorn's own flags: hide them before the import.
import sys
sys.argv = sys.argv[:1]
from nova.wsgi.osapi_compute import application  # noqa: E402,F401

# keystone's WSGI entry point lets oslo.config parse sys.argv, which under
# gunicorn holds gunicorn's own flags: hide them before the import.
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401

"""Helpers for `local-cloud`, run with the local cloud's venv python.

Secrets (the admin password in STATE/secure.yaml, the service user's password
in STATE/keystone/service-user.secret) are read here from their files and go
to child processes through the environment or a 0600 file, never through
argv, stdout or stderr. Usage: helper.py COMMAND ARGS... (see main()).
"""
import json
import os
import random
import re
import secrets
import socket
import sys

ADMIN_USER = 'admin'
ADMIN_PROJECT = 'admin'
SERVICE_USER = 'fpga-sync-service'
SERVICE_PROJECT = 'service'
REGION = 'RegionOne'
KEYSTONE_CLOUD = 'local-keystone'


def die(msg):
    sys.stderr.write('local-cloud: ERROR: %s\n' % msg)
    sys.exit(1)


def write_private(path, text):
    """Write text to path atomically with mode 0600."""
    tmp = '%s.tmp.%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# ------------------------------------------------------------------ ports
def can_bind(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cmd_port_free(host, port):
    sys.exit(0 if can_bind(host, int(port)) else 1)


def cmd_freeports(host, count, *exclude):
    """Print COUNT distinct free ports from 20000-32767 (below Linux's
    ephemeral range, so outgoing connections do not take them meanwhile)."""
    taken = {int(p) for p in exclude}
    out = []
    rng = random.SystemRandom()
    for _ in range(2000):
        if len(out) == int(count):
            break
        p = rng.randint(20000, 32767)
        if p in taken or p in out:
            continue
        if can_bind(host, p):
            out.append(p)
    if len(out) != int(count):
        die('could not find %s free ports on %s' % (count, host))
    print(' '.join(map(str, out)))


# ------------------------------------------------------------------ render
def cmd_render(dst, *srcs):
    """Concatenate SRC... into DST (mode 0600), replacing @NAME@ with the
    value of the environment variable LC_NAME (missing value: error)."""
    out = []
    for src in srcs:
        with open(src) as f:
            text = f.read()

        def sub(m, src=src):
            key = 'LC_' + m.group(1)
            if key not in os.environ:
                die('%s: no value for @%s@' % (src, m.group(1)))
            return os.environ[key]
        out.append(re.sub(r'@([A-Z][A-Z0-9_]*)@', sub, text))
    write_private(dst, ''.join(out))


# ------------------------------------------------------------------ secrets
def secure_path(state):
    return os.path.join(state, 'secure.yaml')


def service_secret_path(state):
    return os.path.join(state, 'keystone', 'service-user.secret')


def admin_password(state):
    import yaml
    try:
        with open(secure_path(state)) as f:
            doc = yaml.safe_load(f)
        return doc['clouds'][KEYSTONE_CLOUD]['auth']['password']
    except (OSError, KeyError, TypeError) as e:
        die('cannot read the admin password from %s (%s)'
            % (secure_path(state), type(e).__name__))


def service_password(state):
    with open(service_secret_path(state)) as f:
        return f.read().strip()


def cmd_ensure_secrets(state):
    """Generate the admin and service passwords once per state dir."""
    if not os.path.exists(secure_path(state)):
        # token_urlsafe: [A-Za-z0-9_-] only, so no oslo.config '$' or YAML
        # quoting issues; 32 chars stays under bcrypt's 72-byte limit
        text = ('# written by local-cloud: secrets for clouds.yaml '
                '(mode 0600, never printed)\n'
                'clouds:\n  %s:\n    auth:\n      password: %s\n'
                % (KEYSTONE_CLOUD, secrets.token_urlsafe(24)))
        write_private(secure_path(state), text)
    os.chmod(secure_path(state), 0o600)
    os.makedirs(os.path.dirname(service_secret_path(state)), exist_ok=True)
    if not os.path.exists(service_secret_path(state)):
        write_private(service_secret_path(state),
                      secrets.token_urlsafe(24) + '\n')


# the compute profile's own secrets: env name -> file under STATE
COMPUTE_SECRETS = {
    'LC_NOVA_DB_PASSWORD': os.path.join('mariadb', 'nova-db.secret'),
    'LC_RABBIT_PASSWORD': os.path.join('rabbitmq', 'rabbit.secret'),
}


def cmd_ensure_compute_secrets(state):
    """Generate the nova DB and RabbitMQ passwords once per state dir."""
    for rel in COMPUTE_SECRETS.values():
        path = os.path.join(state, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            write_private(path, secrets.token_urlsafe(24) + '\n')
        os.chmod(path, 0o600)


def cmd_with_secrets(state, *argv):
    """exec ARGV with OS_BOOTSTRAP_PASSWORD (admin password) and
    LC_SERVICE_PASSWORD in its environment, plus LC_NOVA_DB_PASSWORD and
    LC_RABBIT_PASSWORD once the compute profile has made them."""
    if argv and argv[0] == '--':
        argv = argv[1:]
    env = dict(os.environ)
    env['OS_BOOTSTRAP_PASSWORD'] = admin_password(state)
    env['LC_SERVICE_PASSWORD'] = service_password(state)
    for key, rel in COMPUTE_SECRETS.items():
        path = os.path.join(state, rel)
        if os.path.exists(path):
            with open(path) as f:
                env[key] = f.read().strip()
    os.execvpe(argv[0], list(argv), env)


def cmd_auth_body(state, wrong=None):
    """Print the Keystone v3 password auth body (piped into curl)."""
    pw = admin_password(state)
    if wrong:
        pw = 'wrong-' + secrets.token_hex(8)
    print(json.dumps({'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': ADMIN_USER, 'domain': {'id': 'default'},
            'password': pw}}},
        'scope': {'project': {'name': ADMIN_PROJECT,
                              'domain': {'id': 'default'}}}}}))


def cmd_password_absent(state, *files):
    """Exit 1 if the admin password occurs in any FILE (smoke test)."""
    pw = admin_password(state).encode()
    for path in files:
        with open(path, 'rb') as f:
            if pw in f.read():
                print('admin password found in %s' % path)
                sys.exit(1)


def cmd_fernet_keys(directory):
    """Create a Fernet key repository like keystone-manage fernet_setup
    (key 1 primary, key 0 staged), unless it already has keys."""
    import base64
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    if any(n.isdigit() for n in os.listdir(directory)):
        return
    for name in ('0', '1'):
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        write_private(os.path.join(directory, name), key)


# ------------------------------------------------------------------ catalog
def cmd_register(state, ks_url, *specs):
    """Idempotently register services/endpoints (SPEC = type=name=url) and
    the service user that keystonemiddleware authenticates as. SPEC
    "-type" removes that service type (and its endpoints) if present."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3
    sess = session.Session(auth=v3.Password(
        auth_url=ks_url, username=ADMIN_USER, password=admin_password(state),
        project_name=ADMIN_PROJECT, user_domain_id='default',
        project_domain_id='default'))

    def get(path, key):
        return sess.get(ks_url + path).json()[key]

    def find_or_create(path, key, query, body):
        found = get('%s?%s' % (path, query), key)
        if found:
            return found[0]
        return sess.post(ks_url + path, json={key[:-1]: body}).json()[key[:-1]]

    # service project, user and role for keystonemiddleware
    project = find_or_create('/projects', 'projects', 'name=' + SERVICE_PROJECT,
                             {'name': SERVICE_PROJECT, 'domain_id': 'default'})
    role = find_or_create('/roles', 'roles', 'name=service', {'name': 'service'})
    users = get('/users?name=' + SERVICE_USER, 'users')
    if users:
        uid = users[0]['id']
        sess.patch(ks_url + '/users/' + uid,
                   json={'user': {'password': service_password(state)}})
    else:
        uid = sess.post(ks_url + '/users', json={'user': {
            'name': SERVICE_USER, 'domain_id': 'default',
            'default_project_id': project['id'],
            'password': service_password(state)}}).json()['user']['id']
    sess.put('%s/projects/%s/users/%s/roles/%s'
             % (ks_url, project['id'], uid, role['id']))

    for spec in specs:
        if spec.startswith('-'):
            for svc in get('/services?type=' + spec[1:], 'services'):
                sess.delete(ks_url + '/services/' + svc['id'])
            continue
        stype, name, url = spec.split('=', 2)
        svc = find_or_create('/services', 'services', 'type=' + stype,
                             {'type': stype, 'name': name})
        eps = get('/endpoints?service_id=' + svc['id'], 'endpoints')
        for iface in ('public', 'internal', 'admin'):
            mine = [e for e in eps if e['interface'] == iface]
            if not mine:
                sess.post(ks_url + '/endpoints', json={'endpoint': {
                    'service_id': svc['id'], 'interface': iface, 'url': url,
                    'region_id': REGION}})
            elif mine[0]['url'].rstrip('/') != url.rstrip('/'):
                sess.patch(ks_url + '/endpoints/' + mine[0]['id'],
                           json={'endpoint': {'url': url}})


# ------------------------------------------------------------------ clients
def cmd_write_clients(state):
    """Write STATE/clouds.yaml (no secrets) from LC_* variables."""
    e = os.environ
    lines = ['# written by scripts/local-cloud/local-cloud start; the admin '
             'password is in secure.yaml (0600)', 'clouds:']
    if e.get('LC_KEYSTONE_URL'):
        lines += [
            '  %s:' % KEYSTONE_CLOUD,
            '    auth_type: password',
            '    auth:',
            '      auth_url: %s' % e['LC_KEYSTONE_URL'],
            '      username: %s' % ADMIN_USER,
            '      project_name: %s' % ADMIN_PROJECT,
            '      user_domain_name: Default',
            '      project_domain_name: Default',
            '    region_name: %s' % REGION,
            '    interface: public',
            '    identity_api_version: 3',
        ]
    if e.get('LC_NOAUTH_GLANCE_URL'):
        lines += [
            '  # no Keystone: fixed endpoints, X-Auth-Token: admin',
            '  local-noauth:',
            '    auth_type: admin_token',
            '    auth:',
            '      token: admin',
            '      endpoint: %s' % e['LC_NOAUTH_GLANCE_URL'],
            '    image_endpoint_override: %s' % e['LC_NOAUTH_GLANCE_URL'],
            '    compute_endpoint_override: %s' % e['LC_NOAUTH_NOVA_URL'],
            '    placement_endpoint_override: %s' % e['LC_NOAUTH_PLACEMENT_URL'],
            '  # osc-placement ignores placement_endpoint_override: use this',
            '  # cloud for `openstack resource ...` / `trait ...` in noauth mode',
            '  local-noauth-placement:',
            '    auth_type: admin_token',
            '    auth:',
            '      token: admin',
            '      endpoint: %s' % e['LC_NOAUTH_PLACEMENT_URL'],
        ]
    with open(os.path.join(state, 'clouds.yaml.tmp'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(os.path.join(state, 'clouds.yaml.tmp'),
               os.path.join(state, 'clouds.yaml'))


# ------------------------------------------------------------------ daemons
def cmd_spawn(pidfile, logfile, cwd, *argv):
    """Start ARGV as a daemon: its own session (so its PID is also its
    process group), cwd CWD, stdin /dev/null, stdout and stderr appended to
    LOGFILE, no inherited descriptors (the callers hold flock fds). Write its
    PID to PIDFILE and print it. Exit 1 if ARGV could not be executed."""
    if argv and argv[0] == '--':
        argv = argv[1:]
    rfd, wfd = os.pipe()   # non-inheritable: closes on a successful exec
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setsid()
            os.chdir(cwd)
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                          0o644)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            maxfd = os.sysconf('SC_OPEN_MAX')
            os.closerange(3, wfd)
            os.closerange(wfd + 1, maxfd)
            os.execvp(argv[0], list(argv))
        except BaseException as e:   # report to the parent, never return
            os.write(wfd, ('%s: %s' % (type(e).__name__, e)).encode())
        os._exit(127)
    os.close(wfd)
    with os.fdopen(rfd, 'rb') as f:
        err = f.read()
    if err:
        os.waitpid(pid, 0)
        die('cannot start %s: %s' % (argv[0], err.decode(errors='replace')))
    tmp = '%s.tmp.%d' % (pidfile, os.getpid())
    with open(tmp, 'w') as f:
        f.write('%d\n' % pid)
    os.replace(tmp, pidfile)
    print(pid)


def _proc_table():
    """{pid: (ppid, state)} of all processes."""
    table = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        table[int(name)] = (int(fields[1]), fields[0])
    return table


def cmd_rss(*roots):
    """Print "<processes> <RSS KiB>": ROOTS and all their descendants
    (zombies left out)."""
    table = _proc_table()
    children = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [int(r) for r in roots if r.isdigit()]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    count = kib = 0
    for pid in seen:
        if table[pid][1] == 'Z':
            continue
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        kib += int(line.split()[1])
                        count += 1
                        break
        except OSError:
            pass
    print(count, kib)


def cmd_amqp_check(host, port, user, secret_file):
    """Exit 0 if RabbitMQ on HOST:PORT takes USER with the password in
    SECRET_FILE (an AMQP login, as oslo.messaging does)."""
    import amqp
    with open(secret_file) as f:
        password = f.read().strip()
    try:
        conn = amqp.Connection(host='%s:%s' % (host, port), userid=user,
                               password=password, connect_timeout=5)
        conn.connect()
        conn.close()
    except Exception as e:
        die('AMQP login at %s:%s failed: %s' % (host, port,
                                                  type(e).__name__))


def cmd_json(path, expr):
    """Print a value from a JSON file: expr is a dotted path (a.0.b)."""
    with open(path) as f:
        v = json.load(f)
    for part in expr.split('.') if expr else []:
        v = v[int(part)] if isinstance(v, list) else v[part]
    print(v if isinstance(v, str) else json.dumps(v))


def cmd_catalog_url(path, stype):
    """Print the public URL of service type STYPE from a token response."""
    with open(path) as f:
        cat = json.load(f)['token']['catalog']
    for svc in cat:
        if svc['type'] == stype:
            for ep in svc['endpoints']:
                if ep['interface'] == 'public':
                    print(ep['url'])
                    return
    sys.exit(1)


COMMANDS = {
    'port-free': cmd_port_free,
    'freeports': cmd_freeports,
    'render': cmd_render,
    'ensure-secrets': cmd_ensure_secrets,
    'ensure-compute-secrets': cmd_ensure_compute_secrets,
    'spawn': cmd_spawn,
    'rss': cmd_rss,
    'amqp-check': cmd_amqp_check,
    'with-secrets': cmd_with_secrets,
    'auth-body': cmd_auth_body,
    'password-absent': cmd_password_absent,
    'fernet-keys': cmd_fernet_keys,
    'register': cmd_register,
    'write-clients': cmd_write_clients,
    'json': cmd_json,
    'catalog-url': cmd_catalog_url,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die('usage: helper.py {%s} ARGS...' % ','.join(sorted(COMMANDS)))
    COMMANDS[sys.argv[1]](*sys.argv[2:])


if __name__ == '__main__':
    main()

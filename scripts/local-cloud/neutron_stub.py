"""A Neutron stand-in for the compute profile of `local-cloud` (tests only).

fpga-sync never talks to Neutron, and the tests boot servers with
`"networks": "none"` (compute API 2.37+), so nova never creates a port. But
nova still asks Neutron: nova-api lists the ports of every server it shows
(`GET /servers/{id}` and `/servers/detail` need their security groups; without
a network endpoint they answer 500 EndpointNotFound), and nova-compute lists
ports and networks when it deletes a server. This WSGI app answers those
reads with empty lists and everything else with 404 NeutronError, so an
unexpected call shows up in the log (gunicorn.log: one line per request).

It is not Neutron: it checks no token, stores nothing, creates nothing.
Never use it outside tests on 127.0.0.1.
"""
import json
import sys
import time

# GET /v2.0/<collection> -> {"<key>": []}
_EMPTY_LISTS = {
    'ports': 'ports',
    'networks': 'networks',
    'subnets': 'subnets',
    'security-groups': 'security_groups',
    'security-group-rules': 'security_group_rules',
    'floatingips': 'floatingips',
    'extensions': 'extensions',
    'qos/policies': 'policies',
    'trunks': 'trunks',
}


def _log(environ, status):
    sys.stderr.write('%s neutron-stub %s %s%s -> %s\n' % (
        time.strftime('%H:%M:%S'), environ.get('REQUEST_METHOD'),
        environ.get('PATH_INFO'),
        '?' + environ['QUERY_STRING'] if environ.get('QUERY_STRING') else '',
        status))
    sys.stderr.flush()


def application(environ, start_response):
    method = environ.get('REQUEST_METHOD', 'GET')
    path = environ.get('PATH_INFO', '/').rstrip('/')
    if path.endswith('.json'):
        path = path[:-len('.json')]
    body, status = None, '404 Not Found'
    if path == '' and method == 'GET':
        body = {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                              'links': [{'rel': 'self', 'href': '/v2.0/'}]}]}
        status = '200 OK'
    elif path == '/v2.0' and method == 'GET':
        body = {'resources': []}
        status = '200 OK'
    elif method == 'GET' and path.startswith('/v2.0/'):
        key = _EMPTY_LISTS.get(path[len('/v2.0/'):])
        if key:
            body = {key: []}
            status = '200 OK'
    if body is None:
        body = {'NeutronError': {
            'type': 'HTTPNotFound', 'detail': '',
            'message': 'local-cloud neutron stub: %s %s is not implemented'
                       % (method, path)}}
    _log(environ, status)
    data = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(data)))])
    return [data]

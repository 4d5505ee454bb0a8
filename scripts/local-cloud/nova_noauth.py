"""Test-only auth shim for the loopback nova-api of `local-cloud` (noauth set).

Nova removed its own "noauth2" auth strategy (nova 34 has no
`[api] auth_strategy`), so `local-cloud start` puts this paste filter where
keystonemiddleware's `authtoken` would be in nova's stock api-paste.ini.

It maps "X-Auth-Token: user[:project]" onto the identity headers that
authtoken would set, the way noauth2 did: user "admin" gets the roles
admin,member,reader, anyone else member,reader; the project defaults to the
user name. Identity headers sent by the client are dropped first, so a client
cannot forge them. No token at all gives 401. Everything after this filter is
stock nova (NovaKeystoneContext, policy, API).

Never use this outside tests on 127.0.0.1.
"""
import webob.dec
import webob.exc

_IDENTITY_HEADERS = (
    'X-Identity-Status', 'X-User-Id', 'X-User-Name', 'X-User-Domain-Id',
    'X-Project-Id', 'X-Project-Name', 'X-Project-Domain-Id', 'X-Roles',
    'X-Service-Catalog', 'X-Tenant-Id', 'X-Tenant-Name', 'X-System-Scope',
    'X-Service-Roles', 'X-Service-Identity-Status',
)


class NoAuth(object):
    def __init__(self, app):
        self.app = app

    @classmethod
    def factory(cls, global_conf, **local_conf):
        return cls

    @webob.dec.wsgify
    def __call__(self, req):
        for header in _IDENTITY_HEADERS:
            req.headers.pop(header, None)
        token = req.headers.get('X-Auth-Token')
        if not token:
            return webob.exc.HTTPUnauthorized()
        user, _sep, project = token.partition(':')
        project = project or user
        roles = 'admin,member,reader' if user == 'admin' else 'member,reader'
        req.headers['X-Identity-Status'] = 'Confirmed'
        req.headers['X-User-Id'] = user
        req.headers['X-User-Name'] = user
        req.headers['X-User-Domain-Id'] = 'default'
        req.headers['X-Project-Id'] = project
        req.headers['X-Project-Name'] = project
        req.headers['X-Project-Domain-Id'] = 'default'
        req.headers['X-Roles'] = roles
        return self.app

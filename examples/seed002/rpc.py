# nameko run rpc   ## run service_x, service_y
# Seed 002 as written, except its Python 2 `print '...'` statements, which
# no Python 3 can parse, are written as print() calls.

from nameko.rpc import rpc, RpcProxy

class ServiceY(object):
    name = 'service_y'

    @rpc
    def append_id(self, value):
        print('service_y rpc called')
        return u'{}-y'.format(value)


class ServiceX(object):
    name = 'service_x'

    y = RpcProxy('service_y')

    @rpc
    def remote_method(self, value):
        print('service_x rpc called')
        res = u'{}-x'.format(value)
        return self.y.append_id(res)

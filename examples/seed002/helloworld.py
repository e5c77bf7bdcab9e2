from nameko.rpc import rpc

class HelloService(object):
    name = "hello_service"  # 服务名称

    @rpc  # 入口点标记
    def hello(self, name):
        return "hello, {}".format(name)

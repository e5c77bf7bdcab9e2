from .service1.service1 import GreetingService

from flask_session.redis.redis import RedisSession as RedisSession
from flask_session.redis.redis import RedisSessionInterface as RedisSessionInterface

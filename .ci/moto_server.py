"""moto_server with its DynamoDB requests handled one at a time.

moto checks a DynamoDB condition and then writes, in separate steps, on a
thread per request: two conditional writes on one item can both pass their
condition, which DynamoDB never allows (the lost-update tests then see a lost
update that the library did not cause). Serving DynamoDB requests one after
another makes each conditional write atomic again; other services stay
concurrent (an S3 request can wait on a slow client's body). Arguments are
moto_server's.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

dynamodb_lock = threading.Lock()
dispatch = DomainDispatcherApplication.__call__


def serialized_dynamodb(self, environ, start_response):
    # Every DynamoDB API call names its operation in X-Amz-Target ("DynamoDB_20120810.PutItem").
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with dynamodb_lock:
            return dispatch(self, environ, start_response)
    return dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = serialized_dynamodb
server.main(sys.argv[1:])

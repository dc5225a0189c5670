"""moto_server with its DynamoDB requests, and its conditional S3 writes, handled one at a time.

moto checks a condition and then writes, in separate steps, on a thread per
request: two conditional writes on one DynamoDB item can both pass their
condition, which DynamoDB never allows (the lost-update tests then see a lost
update that the library did not cause), and so can two S3 writes with
`If-None-Match: *` on one key (two moves to one destination both land, where
S3 lets one win and refuses the other with 412). Serving DynamoDB requests
one after another, and S3 writes that carry a condition one after another,
makes each conditional write atomic again. Other S3 requests stay concurrent
(an S3 request can wait on a slow client's body). Arguments are
moto_server's.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

dynamodb_lock = threading.Lock()
s3_conditional_lock = threading.Lock()
dispatch = DomainDispatcherApplication.__call__

# The headers that make an S3 write conditional (PutObject, CompleteMultipartUpload, DeleteObject, CopyObject).
S3_CONDITIONS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_X_AMZ_COPY_SOURCE_IF_MATCH")


def serialized(self, environ, start_response):
    # Every DynamoDB API call names its operation in X-Amz-Target ("DynamoDB_20120810.PutItem").
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with dynamodb_lock:
            return dispatch(self, environ, start_response)
    if environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE") and any(name in environ for name in S3_CONDITIONS):
        with s3_conditional_lock:
            return dispatch(self, environ, start_response)
    return dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = serialized
server.main(sys.argv[1:])

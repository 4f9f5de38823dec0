"""The Python client of Dutyline's decision API (docs/clients.md).

from dutyline_client import Client

with Client("https://dutyline.internal", token=TOKEN) as dutyline:
    result = dutyline.check("sales_company", "zhao_lei", "budget", "approve")
"""

from dutyline_client.async_client import AsyncClient
from dutyline_client.cache import DecisionCache
from dutyline_client.calls import OPERATIONS
from dutyline_client.changes import AsyncChangeWatcher, ChangeWatcher
from dutyline_client.client import Client
from dutyline_client.core import NO_RETRIES, Retries
from dutyline_client.errors import (
    ClientError,
    Conflict,
    DutylineError,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServerError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    Unreachable,
)
from dutyline_client.models import (
    Approval,
    ApprovalRecord,
    Case,
    CaseRecord,
    CaughtUp,
    ChangedDocument,
    ChangedEntity,
    CheckError,
    CheckResult,
    CheckResults,
    Decision,
    Obligation,
    PolicyChange,
    Reason,
)
from dutyline_client.requests import (
    Action,
    CheckRequest,
    CheckResource,
    CheckSubject,
    EvaluationItem,
    Resource,
    Subject,
    check_request,
)
from dutyline_client.version import __version__

__all__ = [
    "NO_RETRIES",
    "OPERATIONS",
    "Action",
    "Approval",
    "ApprovalRecord",
    "AsyncChangeWatcher",
    "AsyncClient",
    "Case",
    "CaseRecord",
    "CaughtUp",
    "ChangeWatcher",
    "ChangedDocument",
    "ChangedEntity",
    "CheckError",
    "CheckRequest",
    "CheckResource",
    "CheckResult",
    "CheckResults",
    "CheckSubject",
    "Client",
    "ClientError",
    "Conflict",
    "Decision",
    "DecisionCache",
    "DutylineError",
    "EvaluationItem",
    "Forbidden",
    "Gone",
    "InvalidRequest",
    "NotFound",
    "Obligation",
    "PayloadTooLarge",
    "PolicyChange",
    "Reason",
    "Resource",
    "Retries",
    "ServerError",
    "Subject",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "Unreachable",
    "__version__",
    "check_request",
]

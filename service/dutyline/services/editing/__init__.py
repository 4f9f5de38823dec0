"""Changing an organisation through the admin API: the whole document, one entity of it, or a rule pack.

`edits` says what an edit is and what it proposes (`plan`, used by applying, deferring and previewing alike);
`validation` whether a proposal may be stored; `writer` stores it as a new policy version, audited in the same
transaction; `pending` holds changes for a second person or for their time and decides them; `preview` says
what one would do; `editor` is the entry point the runtime builds.
"""

from dutyline.services.editing.editor import Editor, Read, StoredPack
from dutyline.services.editing.edits import Current, Edit, EditKind, Method, Proposal, etag_of, org_etag, plan
from dutyline.services.editing.pending import Change, Held
from dutyline.services.editing.preview import ChangedIds, Preview, Summary
from dutyline.services.editing.writer import Written

__all__ = [
    "Change",
    "ChangedIds",
    "Current",
    "Edit",
    "EditKind",
    "Editor",
    "Held",
    "Method",
    "Preview",
    "Proposal",
    "Read",
    "StoredPack",
    "Summary",
    "Written",
    "etag_of",
    "org_etag",
    "plan",
]

"""A checkpoint's integrity digest: a sha256 of the bytes torch.save wrote, sealed into the file.

torch.save writes a zip archive, and a zip archive may end in a comment (up to 64 KiB after the
end-of-central-directory record, EOCD), which every zip reader, torch's included, skips. The
digest travels there: a file stays a plain `torch.load`-able checkpoint, and a bit flipped
anywhere (a weight, the pickle, a zip header, the digest itself) is caught before the file is
trusted, where torch alone would load changed weights without a word.

    written:   torch.save's bytes, whose EOCD ends with comment length 0
    sealed:    the same bytes with the comment length set to 80, then "trainlab-sha256:" + 64 hex
    verified:  sha256(file minus the comment, comment length back to 0) == the hex in the comment

No torch here: the sweep precheck verifies a transfer.weights file before anything imports it.
"""
import hashlib
import re
import struct
from pathlib import Path

from trainlab.errors import FileError

TAG = b"trainlab-sha256:"
COMMENT_LEN = len(TAG) + 64
EOCD = b"PK\x05\x06"  # the end-of-central-directory signature; the record is 22 bytes + its comment
EOCD_LEN = 22
CHUNK = 1 << 22


class DigestWriter:
    """The file object torch.save writes through: it hashes what passes and keeps the last
    bytes (the EOCD) to seal. A failed write is remembered, because torch's zip writer turns
    it into an opaque "unexpected pos" RuntimeError (a full disk would read as a torch bug)."""

    def __init__(self, fh):
        self.fh, self.sha, self.tail, self.error = fh, hashlib.sha256(), b"", None
        self.name = getattr(fh, "name", "")

    def write(self, data) -> int:
        try:
            written = self.fh.write(data)
        except OSError as err:
            self.error = err
            raise
        data = bytes(data)
        self.sha.update(data)
        self.tail = (self.tail + data)[-EOCD_LEN:]
        return written

    def flush(self) -> None:
        self.fh.flush()

    def seal(self) -> None:
        """Append the digest as the archive's comment (torch.save wrote an EOCD without one)."""
        self.fh.seek(-2, 2)
        self.fh.write(_seal(self.tail, self.sha))


def seal_in_memory(data) -> bytes:
    """For torch.save's whole output held in memory: what replaces its last two bytes (the EOCD's
    comment length) to seal it, as DigestWriter seals a file."""
    return _seal(bytes(data[-EOCD_LEN:]), hashlib.sha256(data))


def _seal(tail: bytes, sha) -> bytes:
    if len(tail) != EOCD_LEN or tail[:4] != EOCD or tail[-2:] != b"\0\0":
        raise RuntimeError("torch.save did not end its file with a comment-less zip record")
    return struct.pack("<H", COMMENT_LEN) + TAG + sha.hexdigest().encode()


def verify(path: Path) -> bool:
    """True when `path` carries a digest that matches its content; False when it carries none
    (a plain torch file, or one written before trainlab sealed its checkpoints). A digest that
    does not match, or a damaged seal, is a one-line FileError naming the file."""
    path = Path(path)
    size = path.stat().st_size
    if size < EOCD_LEN + COMMENT_LEN:
        return False
    with open(path, "rb") as fh:
        fh.seek(max(0, size - EOCD_LEN - COMMENT_LEN))
        end = fh.read()
    record, comment = end[:EOCD_LEN], end[EOCD_LEN:]
    looks_sealed = comment.startswith(TAG) or (record[:4] == EOCD and record[-2:] == struct.pack("<H", COMMENT_LEN))
    if not looks_sealed:
        return False
    hexdigest = comment[len(TAG):].decode("ascii", errors="replace")
    if not (record[:4] == EOCD and record[-2:] == struct.pack("<H", COMMENT_LEN) and comment.startswith(TAG)
            and re.fullmatch(r"[0-9a-f]{64}", hexdigest)):
        raise FileError(path, "damaged checkpoint: its integrity record is corrupt (the file changed after it "
                              "was written); use best.pt or a snapshot, or train again")
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        remaining = size - COMMENT_LEN - 2
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            sha.update(chunk)
            remaining -= len(chunk)
    sha.update(b"\0\0")
    if sha.hexdigest() != hexdigest:
        raise FileError(path, "damaged checkpoint: its content does not match the sha256 digest written with it "
                              "(changed on disk or in a copy); use best.pt or a snapshot, or train again")
    return True

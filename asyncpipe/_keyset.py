"""
A compact set of item keys: what a resume keeps of the millions of items it skips.

A Python ``set`` of short strings costs about 90 bytes a key (the string object and its
hash-table slot).  `KeySet` stores each key's UTF-8 bytes in one of many ``bytearray``
buckets, separated by NUL bytes, and finds it with a substring search of its bucket:
about the key's length plus 5 bytes a key (``benchmarks/resume.py`` measures it), and
exact, unlike a set of hashes or a Bloom filter, which could skip an item never written.
A lookup costs a few times a ``set`` lookup, about 2 µs on a loaded 2-core machine: a
run of 1M no-op items keyed by ``str`` took 9.4-10.2 s with the duplicate check, 5.4 s
without, and any real stage's work dwarfs it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

__all__: list[str] = []  # internal: returned by JsonlSink.open and Journal.open

#: Keys per bucket before the buckets double.  Measured on 1M short keys: 64 a bucket
#: costs 8.4 bytes a key, 16 costs 12 and searches faster (a bucket is ~150 bytes).
_PER_BUCKET = 16


class KeySet:
    """
    An add-only set of strings, stored compactly.  Supports ``in``, ``len`` and iteration.
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._bits = 6
        self._buckets = [bytearray(b"\0") for _ in range(1 << self._bits)]
        self._count = 0
        self._odd: set[str] = set()  # keys holding a NUL byte, which separates the others
        for key in keys:
            self.add(key)

    def add(self, key: str, *, new: bool = False) -> bool:
        """
        Add ``key`` unless it is in already; return whether it was added (one search of
        its bucket, where ``in`` and then `add` would make two: the source checks every
        key of a run for duplicates this way).  With ``new`` the caller knows it is not
        in yet (the lines of an exactly-once output), and the search is skipped.
        """
        data = key.encode("utf-8", "surrogatepass")
        if b"\0" in data:
            if key in self._odd:
                return False
            self._odd.add(key)
            self._count += 1
            return True
        # The bucket comes from the hash of the string, not of its bytes: a string caches
        # its hash, so a lookup of a key the pipeline has already hashed pays nothing for it.
        bucket = self._buckets[hash(key) & ((1 << self._bits) - 1)]
        if not new and b"\0" + data + b"\0" in bucket:
            return False
        bucket += data
        bucket.append(0)
        self._count += 1
        if self._count > _PER_BUCKET << self._bits:
            self._grow(self._bits + 1)
        return True

    def reserve(self, count: int) -> None:
        """
        Make room for ``count`` keys in all, so that adding them never regrows the buckets
        (each regrowth rehashes every key: a bulk load that knows its size skips that).
        """
        bits = self._bits
        while count > _PER_BUCKET << bits:
            bits += 1
        if bits != self._bits:
            self._grow(bits)

    def update_new(self, keys: Collection[str]) -> None:
        """
        Add keys known not to be in yet (the keys of an exactly-once output): the fast
        path of a resume.
        """
        self.reserve(self._count + len(keys))
        joined = "".join(keys)
        try:
            joined.encode()  # keys that need no "surrogatepass" ...
            plain = "\0" not in joined  # ... and hold no NUL byte take the fast loop
        except UnicodeEncodeError:
            plain = False
        if not plain:
            for key in keys:
                self.add(key, new=True)
            return
        buckets, mask = self._buckets, (1 << self._bits) - 1
        for key in keys:
            bucket = buckets[hash(key) & mask]
            bucket += key.encode()
            bucket.append(0)
        self._count += len(keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        data = key.encode("utf-8", "surrogatepass")
        if b"\0" in data:
            return key in self._odd
        return b"\0" + data + b"\0" in self._buckets[hash(key) & ((1 << self._bits) - 1)]

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for bucket in self._buckets:
            for key in bucket[1:-1].split(b"\0") if len(bucket) > 1 else ():
                yield key.decode("utf-8", "surrogatepass")
        yield from self._odd

    def __repr__(self) -> str:
        return f"<KeySet of {self._count} keys, {self.nbytes} bytes>"

    @property
    def nbytes(self) -> int:
        """
        The bytes the buckets hold (without the allocator's slack).
        """
        return sum(len(bucket) + 57 for bucket in self._buckets) + 8 * len(self._buckets)

    def _grow(self, bits: int) -> None:
        self._bits = bits
        mask = (1 << self._bits) - 1
        buckets = [bytearray(b"\0") for _ in range(1 << self._bits)]
        for old in self._buckets:
            if len(old) > 1:
                for key in old[1:-1].split(b"\0"):
                    bucket = buckets[hash(key.decode("utf-8", "surrogatepass")) & mask]
                    bucket += key
                    bucket.append(0)
        self._buckets = buckets

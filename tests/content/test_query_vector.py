"""The question's vector as retrieval sends it: pgvector's text form, written by
orjson, read back by PostgreSQL as exactly the same float32 values."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content.repository import _vector_text


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 1.0, 1e4])
async def test_the_query_vector_reaches_postgresql_exactly(
    session: AsyncSession, scale: float
) -> None:
    rng = np.random.default_rng(7)
    vector = (rng.standard_normal(384) * scale).astype(np.float32)
    vector[0] = 0.0
    read = (
        await session.execute(
            text("SELECT CAST(CAST(:vector AS vector) AS real[])"),
            {"vector": _vector_text(vector)},
        )
    ).scalar_one()
    assert np.array_equal(np.asarray(read, dtype=np.float32), vector)


def test_a_vector_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(384,\)"):
        _vector_text(np.ones(3, dtype=np.float32))

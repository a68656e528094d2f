"""Operations: lifecycle verbs that outlive their request, read by id."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import OperationOut

router = APIRouter(prefix="/api/v1/operations", tags=["operations"], dependencies=[Depends(account)])


@router.get("/{op_id}")
async def get_operation(op_id: int, p: PlatformDep) -> OperationOut:
    return OperationOut.of(await p.lifecycle.get_operation(op_id))

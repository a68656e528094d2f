"""Variables for ``${name}`` in apps' SQL, properties and args; secret values are never returned."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from streampilot.api.deps import PlatformDep, account
from streampilot.api.schemas import VariableCreate, VariableOut, VariablePatch

router = APIRouter(prefix="/api/v1/variables", tags=["variables"], dependencies=[Depends(account)])


@router.get("")
async def list_variables(p: PlatformDep) -> list[VariableOut]:
    return [VariableOut.of(v) for v in await p.variables.all()]


@router.post("", status_code=201)
async def create_variable(body: VariableCreate, p: PlatformDep) -> VariableOut:
    return VariableOut.of(
        await p.variables.create(
            body.name, body.value, secret=body.secret, description=body.description, team_id=body.team_id
        )
    )


@router.get("/{variable_id}")
async def get_variable(variable_id: int, p: PlatformDep) -> VariableOut:
    return VariableOut.of(await p.variables.get(variable_id))


@router.patch("/{variable_id}")
async def update_variable(variable_id: int, body: VariablePatch, p: PlatformDep) -> VariableOut:
    return VariableOut.of(
        await p.variables.update(variable_id, value=body.value, secret=body.secret, description=body.description)
    )


@router.delete("/{variable_id}", status_code=204)
async def delete_variable(variable_id: int, p: PlatformDep) -> Response:
    await p.variables.delete(variable_id)
    return Response(status_code=204)

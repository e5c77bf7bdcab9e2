"""The seed's FastAPI application with ``async def`` endpoints."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel
from rpc import cluster_rpc, upload_service_rpc, uploads_so_far


class UploadRequestBody(BaseModel):
    name: str
    size: int


@asynccontextmanager
async def lifespan(app: FastAPI):
    await cluster_rpc.start()  # one connection and reply queue for every request
    yield
    await cluster_rpc.stop()


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root():
    return {"message": "Hello World", "uploads": await uploads_so_far()}


@app.post("/upload/")
async def upload(data: UploadRequestBody):
    success: bool = await upload_service_rpc(data)
    return {"status": success}

"""The streamed tar writer lives in annotation.archives (the dataset export uses it too); training's modules import it here."""

from annotation.archives import BLOCK, CHUNK, folder_files, tar_chunks

__all__ = ["BLOCK", "CHUNK", "folder_files", "tar_chunks"]

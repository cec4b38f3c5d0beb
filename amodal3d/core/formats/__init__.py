"""The folder formats stages hand each other (DESIGN.md): scene (written by render-scenes), completion (complete)
and reconstruction (reconstruct). Readers and writers live here so that no stage reads another stage's internals."""

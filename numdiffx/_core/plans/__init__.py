"""Operations as data: each plan describes the entries of one operation (directions to
perturb, stencil points to combine) and its output layout; any step rule that supports
it runs it. Adding an operation is one new module here plus its public function."""

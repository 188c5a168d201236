"""No import circle anywhere in `complaintcore`: the layer contracts of pyproject.toml keep
imports pointing down between packages; this keeps modules from importing each other in a
circle inside one (imports inside functions included)."""

import grimp

PACKAGE = "complaintcore"


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every module from which an import path leads back to itself, with one such path."""
    found = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                found.append([module, *chain])
                break
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(PACKAGE)
    assert circles(graph) == []


def test_a_circle_is_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert circles(graph) == [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]

"""A JSON API for a todo list: CRUD, typed parameters, validation, OpenAPI.

Run it with ``python -m trasgi examples.todo_api:app``, then::

    curl -X POST localhost:8000/todos -d '{"title": "write docs"}'
    curl localhost:8000/todos
    curl 'localhost:8000/todos?done=true'
    curl -X PATCH localhost:8000/todos/1 -d '{"done": true}'
    curl -X DELETE localhost:8000/todos/1

and open http://localhost:8000/docs for the API's documentation page.

The docs' tutorial (docs/tutorial/todo-api.md) builds this file step by step.
"""

from typing import Annotated

import msgspec

from trasgi_web import App, Depends, HTTPException, Request

app = App()


class Todo(msgspec.Struct):
    """A todo as the API returns it."""

    id: int
    title: str
    done: bool = False


# A title holds at least one character that is not a space.
Title = Annotated[str, msgspec.Meta(pattern="[^ ]", max_length=200)]


class TodoIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new todo: the title, and whether it is already done."""

    title: Title
    done: bool = False


class TodoPatch(msgspec.Struct, forbid_unknown_fields=True):
    """The fields of a todo to change; those left out stay as they are."""

    title: Title | None = None
    done: bool | None = None


class TodoStore:
    """Todos in memory, numbered from 1."""

    def __init__(self) -> None:
        self.todos: dict[int, Todo] = {}
        self.next_id = 1

    def add(self, title: str, done: bool) -> Todo:
        todo = Todo(self.next_id, title.strip(), done)
        self.todos[todo.id] = todo
        self.next_id += 1
        return todo

    def get(self, todo_id: int) -> Todo:
        try:
            return self.todos[todo_id]
        except KeyError:
            raise HTTPException(404, f"Todo {todo_id} not found") from None


app.state.store = TodoStore()


def store(request: Request) -> TodoStore:
    """The application's store (a dependency: handlers name it by type)."""
    found: TodoStore = request.app.state.store
    return found


Store = Annotated[TodoStore, Depends(store)]


@app.get("/todos", tags=["todos"])
async def list_todos(todos: Store, done: bool | None = None) -> list[Todo]:
    """List the todos, or only those done (``?done=true``) or not."""
    found = list(todos.todos.values())
    if done is not None:
        found = [todo for todo in found if todo.done == done]
    return found


@app.post("/todos", tags=["todos"], status_code=201)
async def create_todo(
    request: Request, new: TodoIn, todos: Store
) -> tuple[Todo, int, dict[str, str]]:
    """Create a todo; its URL is in the ``Location`` header."""
    todo = todos.add(new.title, new.done)
    location = request.url_for("get_todo", todo_id=todo.id)
    return todo, 201, {"Location": location}


@app.get("/todos/{todo_id:int}", tags=["todos"], responses={404: "No such todo"})
async def get_todo(todo_id: int, todos: Store) -> Todo:
    """One todo."""
    return todos.get(todo_id)


@app.patch("/todos/{todo_id:int}", tags=["todos"], responses={404: "No such todo"})
async def update_todo(todo_id: int, changes: TodoPatch, todos: Store) -> Todo:
    """Change a todo's title or state."""
    todo = todos.get(todo_id)
    if changes.title is not None:
        todo.title = changes.title.strip()
    if changes.done is not None:
        todo.done = changes.done
    return todo


@app.delete(
    "/todos/{todo_id:int}",
    tags=["todos"],
    status_code=204,
    responses={404: "No such todo"},
)
async def delete_todo(todo_id: int, todos: Store) -> None:
    """Delete a todo."""
    todos.get(todo_id)
    del todos.todos[todo_id]

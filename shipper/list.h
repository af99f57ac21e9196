/* Intrusive doubly linked lists (circular, with a sentinel head), after libuv's queue.h. */
#ifndef SP_LIST_H
#define SP_LIST_H

#include <stddef.h>

typedef struct sp_list {
    struct sp_list *next, *prev;
} sp_list;

#define sp_list_entry(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))
#define sp_list_foreach(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)
#define sp_list_foreach_safe(it, tmp, head)                                                        \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

static inline void sp_list_init(sp_list *h)
{
    h->next = h->prev = h;
}

static inline int sp_list_empty(const sp_list *h)
{
    return h->next == h;
}

static inline void sp_list_insert_tail(sp_list *h, sp_list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void sp_list_insert_head(sp_list *h, sp_list *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static inline void sp_list_remove(sp_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

#endif

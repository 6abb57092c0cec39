/* fetch_pool — see fetch_pool.h. */
#include "fetch_pool.h"

#include <stdlib.h>

CURL *fetch_pool_easy_get(struct fetch_pool *pl, const void *owner, bool *configured)
{
	*configured = false;
	if (!pl->n_easy)
		return curl_easy_init();
	for (size_t i = pl->n_easy; i-- > 0;) {
		if (pl->easy[i].owner == owner) {
			CURL *e = pl->easy[i].e;
			pl->easy[i] = pl->easy[--pl->n_easy];
			*configured = true;
			return e;
		}
	}
	struct pooled_easy pe = pl->easy[--pl->n_easy];
	if (pe.owner)
		curl_easy_reset(pe.e);
	return pe.e;
}

void fetch_pool_easy_put(struct fetch_pool *pl, CURL *e, const void *owner)
{
	if (!e)
		return;
	curl_easy_setopt(e, CURLOPT_CURLU, NULL); /* the request's, freed with it */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL); /* may be the request's too; set again
	                                                  at every hand-off */
	if (pl->n_easy < FETCH_EASY_POOL_MAX) {
		if (!owner)
			curl_easy_reset(e);
		pl->easy[pl->n_easy++] = (struct pooled_easy){.e = e, .owner = owner};
	} else {
		curl_easy_cleanup(e);
	}
}

void fetch_pool_easy_forget(struct fetch_pool *pl, const void *owner)
{
	for (size_t i = 0; i < pl->n_easy; i++)
		if (pl->easy[i].owner == owner) {
			curl_easy_reset(pl->easy[i].e);
			pl->easy[i].owner = NULL;
		}
}

bool fetch_pool_body_get(struct fetch_pool *pl, char **buf, size_t *cap)
{
	if (!pl->n_bodies)
		return false;
	pl->n_bodies--;
	*buf = pl->bodies[pl->n_bodies].buf;
	*cap = pl->bodies[pl->n_bodies].cap;
	return true;
}

void fetch_pool_body_put(struct fetch_pool *pl, char *buf, size_t cap)
{
	if (buf && cap <= FETCH_BODY_POOL_KEEP_MAX && pl->n_bodies < FETCH_EASY_POOL_MAX)
		pl->bodies[pl->n_bodies++] = (struct pooled_body){.buf = buf, .cap = cap};
	else
		free(buf);
}

void *fetch_pool_request_get(struct fetch_pool *pl)
{
	return pl->n_requests ? pl->requests[--pl->n_requests] : NULL;
}

void fetch_pool_request_put(struct fetch_pool *pl, void *req)
{
	if (req && pl->n_requests < FETCH_REQUEST_POOL_MAX)
		pl->requests[pl->n_requests++] = req;
	else
		free(req);
}

void fetch_pool_clear(struct fetch_pool *pl)
{
	while (pl->n_requests)
		free(pl->requests[--pl->n_requests]);
	while (pl->n_easy)
		curl_easy_cleanup(pl->easy[--pl->n_easy].e);
	while (pl->n_bodies)
		free(pl->bodies[--pl->n_bodies].buf);
}

import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * PostgreSQL only: the request path's reservation, settlement and release as server-side functions, so that each is
 * one round trip instead of five to seven statements (decision 0010). Same semantics as ReservationsRepository,
 * which the store contract suite holds both to. SQLite runs them in-process (sqlite-hot-path.ts): nothing to do.
 * Unqualified names resolve through the caller's search_path, as the store's own queries do.
 */
export const postgresRequestFunctionsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
    await sql`
      create function tm_reserve(p_request text, p_account text, p_key text, p_amount bigint, p_now bigint)
      returns text language plpgsql as $$
      begin
        update accounts set balance_micros = balance_micros - p_amount
         where id = p_account and status = 'active' and balance_micros >= p_amount;
        if not found then
          if exists (select 1 from accounts where id = p_account and status = 'active') then
            return 'insufficient_balance';
          end if;
          return 'account_inactive';
        end if;
        if p_key is not null then
          update api_keys set spent_micros = spent_micros + p_amount
           where id = p_key and account_id = p_account
             and (spend_limit_micros is null or spent_micros + p_amount <= spend_limit_micros);
          if not found then
            if not exists (select 1 from api_keys where id = p_key and account_id = p_account) then
              raise exception 'reserve: account % has no API key %', p_account, p_key;
            end if;
            -- The account row stays locked until commit: giving the debit back is as if it never happened.
            update accounts set balance_micros = balance_micros + p_amount where id = p_account;
            return 'key_spend_limit';
          end if;
        end if;
        insert into reservations (request_id, account_id, key_id, amount_micros, created_at)
        values (p_request, p_account, p_key, p_amount, p_now);
        return 'reserved';
      end $$`.execute(db);
    await sql`
      create function tm_release(p_request text) returns boolean language plpgsql as $$
      declare
        v_account text;
        v_key text;
        v_amount bigint;
      begin
        delete from reservations where request_id = p_request
        returning account_id, key_id, amount_micros into v_account, v_key, v_amount;
        if not found then
          return false;
        end if;
        update accounts set balance_micros = balance_micros + v_amount where id = v_account;
        if v_key is not null then
          update api_keys set spent_micros = spent_micros - v_amount where id = v_key;
        end if;
        return true;
      end $$`.execute(db);
    await sql`
      create function tm_settle(
        p_id text, p_created bigint, p_account text, p_key text, p_model text, p_endpoint text, p_status text,
        p_prompt integer, p_cached integer, p_completion integer, p_cost bigint, p_latency integer, p_ttft integer,
        p_batch text, p_ledger_id text
      ) returns void language plpgsql as $$
      declare
        v_account text;
        v_key text;
        v_held bigint;
      begin
        -- Deleting first locks the reservation: a concurrent settle or release of the same request waits, then finds none.
        delete from reservations where request_id = p_id
        returning account_id, key_id, amount_micros into v_account, v_key, v_held;
        if not found then
          return;
        end if;
        if p_cost > v_held then
          raise exception 'settle %: cost % micro-USD exceeds the % reserved', p_id, p_cost, v_held;
        end if;
        if p_account <> v_account then
          raise exception 'settle %: account % is not the reservation''s %', p_id, p_account, v_account;
        end if;
        update accounts set balance_micros = balance_micros + (v_held - p_cost) where id = v_account;
        if v_key is not null then
          update api_keys set spent_micros = spent_micros - (v_held - p_cost) where id = v_key;
        end if;
        insert into usage_records (id, created_at, account_id, key_id, model, endpoint, status, prompt_tokens,
                                   cached_tokens, completion_tokens, cost_micros, latency_ms, ttft_ms, batch_id)
        values (p_id, p_created, p_account, p_key, p_model, p_endpoint, p_status, p_prompt,
                p_cached, p_completion, p_cost, p_latency, p_ttft, p_batch);
        insert into ledger_entries (id, account_id, amount_micros, kind, request_id, note, created_at)
        values (p_ledger_id, p_account, -p_cost, 'usage', p_id, null, p_created);
      end $$`.execute(db);
  },
};

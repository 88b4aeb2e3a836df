export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** Tokens of context per request (vLLM's field). */
  max_model_len: number;
}

export interface ModelList {
  object: 'list';
  data: ModelObject[];
}

/** What the demo shop sells; prices in cents so sums stay exact. Shared by the page and the server step. */
export const CATALOG = {
  milk: { name: 'Milk (1 l)', cents: 120 },
  bread: { name: 'Bread', cents: 250 },
  eggs: { name: 'Eggs (12)', cents: 310 },
  coffee: { name: 'Coffee beans (500 g)', cents: 690 },
  apples: { name: 'Apples (1 kg)', cents: 280 },
} as const

export type ProductId = keyof typeof CATALOG

export interface CartLine {
  product: ProductId
  qty: number
}

export interface Order {
  number: number
  lines: Array<CartLine & { cents: number }>
  totalCents: number
  placedAt: string
  deliverTo?: string
}

export const isProduct = (id: unknown): id is ProductId => typeof id === 'string' && Object.hasOwn(CATALOG, id)

export const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`

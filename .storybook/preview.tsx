import '../demo/src/styles.css'
import type { Preview } from '@storybook/react-vite'

const preview: Preview = {
  parameters: { layout: 'padded' },
  // A Docs page per component, from its stories (published with the static build).
  tags: ['autodocs'],
}
export default preview
